"""HTTP routers: the API surface, assembled by `app.main` on top of the domain packages."""
