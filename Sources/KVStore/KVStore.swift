// KVStore: work in progress
