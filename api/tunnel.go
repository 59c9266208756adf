package api

func (s *Server) tunnelRoutes() {}
