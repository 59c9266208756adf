package api

func (s *Server) msgRoutes() {}
