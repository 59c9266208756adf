package api

func (s *Server) gossipRoutes() {}
