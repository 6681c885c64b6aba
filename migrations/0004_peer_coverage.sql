-- What this node may leave out when it sends its feed to a peer (docs/protocol.md, "Leaving
-- out what the receiver has").
--
-- covered_lamport: this node holds, for every key, the peer's own writes up to this Lamport
-- time or something newer; set when this node has applied the peer's feed to its end (as the
-- peer's clock read K at that end), reset to 0 when either file changes epoch. Other nodes
-- learn it from this node and skip the peer's rows at or below it.
--
-- resend_all_through: this node's seq up to which the peer is sent every row, its own writes
-- included; set to this node's last seq when the peer is first met or its file was replaced,
-- since a new file may lack writes the peer once made.
ALTER TABLE peers ADD COLUMN covered_lamport INTEGER NOT NULL DEFAULT 0;
ALTER TABLE peers ADD COLUMN resend_all_through INTEGER NOT NULL DEFAULT 0;
