// Starts Swagger UI on /api/docs. A file of its own, not inline, so that the page's
// Content-Security-Policy can allow script from this origin only.
"use strict";

window.addEventListener("DOMContentLoaded", function () {
  var container = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: container.dataset.specUrl,
    domNode: container,
    deepLinking: true,
    // The default sends the document to validator.swagger.io and shows its badge from there.
    validatorUrl: null,
  });
});
