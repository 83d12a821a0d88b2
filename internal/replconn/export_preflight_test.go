package replconn

// PassfilePath exposes passfilePath to the external tests.
var PassfilePath = passfilePath
