package api

// extraRoutes registers the routes of the capabilities built on the node;
// each capability keeps its handlers and client methods in its own file.
func (s *Server) extraRoutes() {
	s.msgRoutes()
	s.gossipRoutes()
	s.tunnelRoutes()
}
