import Testing
import TestSupport

import SQLite

@Suite("SQLite set up once per process")
struct ProcessSetUpTests {
    /// Memory statistics cost a process-wide mutex per allocation; the first open turns them off.
    @Test("SQLite counts no memory once a connection has been opened")
    func noMemoryStatistics() throws {
        try withConnection { connection in
            try connection.execute("CREATE TABLE t (x); INSERT INTO t VALUES (randomblob(100000))")
            #expect(try connection.textValue("SELECT count(*) FROM t") == "1")
            #expect(Connection.countedMemoryBytes == 0)
        }
    }
}
