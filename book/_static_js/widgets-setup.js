// Set-up for the offline ipywidgets HTML manager, loaded on pages with saved
// widget state, after RequireJS and before html-manager/dist/embed-amd.js
// (the order of nb_ipywidgets_js in _config.yml).
(function () {
  "use strict";
  // 1. The manager's bundle defines AMD modules named "@jupyter-widgets/base",
  //    "@jupyter-widgets/controls", "@jupyter-widgets/html-manager/dist/...";
  //    each loads its icon fonts relative to where RequireJS says that module
  //    lives, by default a "@jupyter-widgets/" folder beside the page, which
  //    does not exist (the fonts of base and controls then fail to load, and
  //    whether the browser asks for them at all varies from load to load).
  //    Map every "@jupyter-widgets/..." name to the vendored copy next to this
  //    file (_static/html-manager/dist/), where the bundle's fonts are.
  var here = document.currentScript && document.currentScript.src;
  if (here) {
    var dist = new URL("html-manager/dist/", here).href;
    window.__jupyter_widgets_assets_path__ = dist;
    if (window.require && window.require.config) {
      var folder = dist.replace(/\/$/, "");
      window.require.config({ paths: { "@jupyter-widgets": folder, "@jupyter-widgets/html-manager/dist": folder } });
    }
  }

  // 2. The manager typesets widget labels with MathJax 2's API
  //    (MathJax.Hub.Queue(["Typeset", MathJax.Hub, element])); the book loads
  //    MathJax 3, which has no MathJax.Hub, so every label would throw
  //    "Cannot read properties of undefined (reading 'Queue')". Map the call.
  function queue(job) {
    var element = Array.isArray(job) ? job[2] : null;
    var mj = window.MathJax;
    if (!element || !mj) return;
    var ready = mj.startup && mj.startup.promise ? mj.startup.promise : Promise.resolve();
    ready.then(function () {
      return mj.typesetPromise ? mj.typesetPromise([element]) : null;
    }).catch(function () {});
  }
  function install() {
    // MathJax 3 replaces the window.MathJax configuration object when it loads,
    // so attach the shim to the loaded object (it has a version then).
    if (window.MathJax && window.MathJax.version && !window.MathJax.Hub) {
      window.MathJax.Hub = { Queue: queue };
    }
  }
  install();
  document.addEventListener("DOMContentLoaded", install);
  window.addEventListener("load", install);
})();
