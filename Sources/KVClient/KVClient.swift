// KVClient: work in progress
