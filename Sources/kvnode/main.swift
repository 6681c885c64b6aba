print("kvnode")
