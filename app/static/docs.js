// Starts the vendored Swagger UI on this service's schema. A file rather than an inline script,
// so the page runs under a Content-Security-Policy of script-src 'self'.
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  presets: [SwaggerUIBundle.presets.apis],
  deepLinking: true,
  showExtensions: true,
  validatorUrl: null, // never send the schema to validator.swagger.io: the page stays offline
});
