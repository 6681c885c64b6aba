// SQLite: work in progress
