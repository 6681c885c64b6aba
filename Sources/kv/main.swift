print("kv")
