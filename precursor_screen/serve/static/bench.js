// The lab bench page. No inline script, no HTML built from text: this file only moves a SMILES
// between the form and the editor (an <iframe> on the same origin, see editor.js) and submits
// the form; the server renders every answer.
"use strict";

function benchEditor() {
  var frame = document.getElementById("editor");
  try {
    return frame && frame.contentWindow ? frame.contentWindow.benchEditor || null : null;
  } catch (e) {
    return null;
  }
}

function note(text) {
  var p = document.getElementById("page-note");
  p.textContent = text;
  p.hidden = !text;
}

// Call fn(editor) once the editor has loaded (it loads after the page).
function whenEditor(fn, tries) {
  var editor = benchEditor();
  if (editor) { fn(editor); return; }
  if ((tries || 0) > 200) { note("The structure editor did not load."); return; }
  window.setTimeout(function () { whenEditor(fn, (tries || 0) + 1); }, 50);
}

function checkDrawing() {
  var editor = benchEditor();
  if (!editor) { note("The structure editor is still loading."); return; }
  var smiles = editor.smiles();
  if (!smiles) { note("Draw a structure first."); return; }
  document.getElementById("query").value = smiles;
  document.getElementById("check-form").submit();
}

function toEditor() {
  var text = document.getElementById("query").value.trim();
  if (!text) { note("Type a SMILES first."); return; }
  whenEditor(function (editor) { editor.readGenericMolecularInput(text); note(""); });
}

document.addEventListener("DOMContentLoaded", function () {
  document.getElementById("check-drawing").addEventListener("click", checkDrawing);
  document.getElementById("to-editor").addEventListener("click", toEditor);
  // After an answer, the editor shows the structure that was screened (a name's, a CAS number's).
  var answer = document.getElementById("answer");
  if (answer && answer.dataset.smiles) {
    whenEditor(function (editor) { editor.readGenericMolecularInput(answer.dataset.smiles); });
  }
});
