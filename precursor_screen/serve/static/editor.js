// The structure editor page (JSME), shown in an <iframe> of the lab bench. It runs under its own
// Content-Security-Policy, which JSME needs ('unsafe-inline' and 'unsafe-eval' for scripts); the
// main page, where answers are shown, keeps script-src 'self'. The main page reads and sets the
// structure through window.benchEditor (same origin).
"use strict";

window.jsmeOnLoad = function () {
  var box = document.getElementById("jsme_container");
  box.textContent = "";
  // nosearchinchiKey: no menu item opening a web search; the help button opens our own page
  var editor = new JSApplet.JSME("jsme_container", "420px", "340px",
                                 {options: "newlook,noquery,nosearchinchiKey"});
  if (editor.setHelpURL) { editor.setHelpURL("/static/editor-help.html"); }
  window.benchEditor = editor;
  box.dataset.status = "ready";
};
