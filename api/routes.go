package api

// extraRoutes registers the routes of the capabilities built on the node.
func (s *Server) extraRoutes() {}
