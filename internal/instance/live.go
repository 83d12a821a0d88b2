package instance

// LiveServer returns why a server may still be running on the data
// directory, "" when it is proven stopped. For callers that must check a
// directory that is not (yet) a pending instance, as Inspect checks one.
func (in *Instance) LiveServer() string { return in.liveServer() }
