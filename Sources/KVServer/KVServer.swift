// KVServer: work in progress
