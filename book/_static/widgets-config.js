// RequireJS configuration for the ipywidgets HTML manager vendored under _static/vendor/ (no CDN).
// Loaded before require.js: a global `require` object is read by require.js as its configuration.
// The manager finds its icon fonts next to the URL of its AMD module, so that URL must point into
// the site, whatever the depth of the page.
(function () {
  var src = document.currentScript.src;                     // .../_static/widgets-config.js
  var manager = src.slice(0, src.lastIndexOf("/") + 1) + "vendor/html-manager";
  window.require = {
    paths: {
      "@jupyter-widgets/html-manager": manager + "/embed-amd",
      "@jupyter-widgets/html-manager/dist": manager
    }
  };
})();
