// precursor-screen report: filter, sort and page the table and the cards. No network, no libraries.
// State lives in the URL hash (#flag=convertible&q=apaan&sort=score&dir=desc&page=2) so a filtered
// view can be bookmarked, and is read at load. Text from the data is only ever read, never parsed
// as HTML.
(function () {
  "use strict";
  var PAGE = 250;
  var body = document.body;
  var table = document.getElementById("rows");
  var tbody = table ? table.tBodies[0] : null;
  var flagSel = document.getElementById("flag-filter");
  var textIn = document.getElementById("text-filter");
  var shown = document.getElementById("shown");
  var pageInfo = document.getElementById("page-info");
  var prev = document.getElementById("prev-page");
  var next = document.getElementById("next-page");
  var heads = table ? Array.prototype.slice.call(table.tHead.rows[0].cells) : [];
  var rows = tbody ? Array.prototype.slice.call(tbody.rows) : [];
  var cards = Array.prototype.slice.call(document.querySelectorAll("article.card"));
  var state = { flag: "", q: "", sort: "", dir: "asc", page: 1 };

  rows.forEach(function (tr, i) { tr._i = i; tr._text = tr.textContent.toLowerCase(); });
  cards.forEach(function (c) { c._text = c.textContent.toLowerCase(); });

  // What a reader sees: count the structure drawings that the browser actually laid out.
  var drawn = 0, mols = document.querySelectorAll("svg.mol");
  Array.prototype.forEach.call(mols, function (svg) {
    var use = svg.querySelector("use");
    try { var b = use && use.getBBox(); if (b && b.width > 0 && b.height > 0) { drawn += 1; } } catch (e) { /* none */ }
  });
  body.setAttribute("data-drawn", String(drawn));
  body.setAttribute("data-drawings", String(mols.length));

  function flagMatches(el, flag) {
    var f = el.getAttribute("data-flag");
    if (!flag) { return true; }
    if (flag === "flagged") { return f !== "none" && f !== "unreadable"; }
    return f === flag;
  }
  function textMatches(el, terms) {
    for (var i = 0; i < terms.length; i++) { if (el._text.indexOf(terms[i]) < 0) { return false; } }
    return true;
  }
  function cellValue(tr, col, num) {
    var td = tr.cells[col];
    var v = td.hasAttribute("data-v") ? td.getAttribute("data-v") : td.textContent;
    if (num) { var x = parseFloat(v); return isNaN(x) ? -Infinity : x; }
    return v.toLowerCase();
  }
  function sortRows() {
    var col = -1, num = false;
    heads.forEach(function (th, i) {
      th.removeAttribute("aria-sort");
      if (th.getAttribute("data-key") === state.sort) { col = i; num = th.getAttribute("data-type") === "num"; }
    });
    var sign = state.dir === "desc" ? -1 : 1;
    var sorted = rows.slice();
    if (col >= 0) {
      heads[col].setAttribute("aria-sort", state.dir === "desc" ? "descending" : "ascending");
      sorted.sort(function (a, b) {
        var x = cellValue(a, col, num), y = cellValue(b, col, num);
        return x < y ? -sign : x > y ? sign : a._i - b._i;
      });
    } else {
      sorted.sort(function (a, b) { return a._i - b._i; });
    }
    var frag = document.createDocumentFragment();
    sorted.forEach(function (tr) { frag.appendChild(tr); });
    tbody.appendChild(frag);
    return sorted;
  }
  function writeHash() {
    var p = [];
    if (state.flag) { p.push("flag=" + encodeURIComponent(state.flag)); }
    if (state.q) { p.push("q=" + encodeURIComponent(state.q)); }
    if (state.sort) { p.push("sort=" + encodeURIComponent(state.sort), "dir=" + state.dir); }
    if (state.page > 1) { p.push("page=" + state.page); }
    var h = p.length ? "#" + p.join("&") : "";
    if (!h && !isView()) { return; }
    if (location.hash !== h && history.replaceState) {
      try { history.replaceState(null, "", h || location.pathname + location.search); } catch (e) { /* file: */ }
    }
  }
  function apply() {
    var terms = state.q.toLowerCase().split(/\s+/).filter(Boolean);
    var order = tbody ? sortRows() : [];
    var matching = order.filter(function (tr) { return flagMatches(tr, state.flag) && textMatches(tr, terms); });
    var pages = Math.max(1, Math.ceil(matching.length / PAGE));
    if (state.page > pages) { state.page = pages; }
    if (state.page < 1) { state.page = 1; }
    var lo = (state.page - 1) * PAGE, hi = lo + PAGE;
    var onPage = new Set(matching.slice(lo, hi));
    rows.forEach(function (tr) { tr.hidden = !onPage.has(tr); });
    var nCards = 0;
    cards.forEach(function (c) {
      var ok = flagMatches(c, state.flag) && textMatches(c, terms);
      c.hidden = !ok;
      if (ok) { nCards += 1; }
    });
    if (shown) {
      shown.textContent = matching.length + " of " + rows.length + " rows, " + nCards + " of " + cards.length + " cards";
      shown.setAttribute("data-rows", String(matching.length));
      shown.setAttribute("data-cards", String(nCards));
    }
    if (pageInfo) {
      pageInfo.textContent = matching.length ? "rows " + (lo + 1) + "\u2013" + Math.min(hi, matching.length) +
        " of " + matching.length + " (page " + state.page + " of " + pages + ")" : "no rows match";
      prev.disabled = state.page <= 1;
      next.disabled = state.page >= pages;
    }
    writeHash();
  }
  function readHash() {
    var p = new URLSearchParams(location.hash.replace(/^#/, ""));
    state.flag = p.get("flag") || "";
    state.q = p.get("q") || "";
    state.sort = p.get("sort") || "";
    state.dir = p.get("dir") === "desc" ? "desc" : "asc";
    state.page = parseInt(p.get("page") || "1", 10) || 1;
    if (flagSel) {
      flagSel.value = state.flag;
      if (flagSel.value !== state.flag) { state.flag = ""; flagSel.value = ""; }
    }
    if (textIn) { textIn.value = state.q; }
  }

  if (flagSel) { flagSel.addEventListener("change", function () { state.flag = flagSel.value; state.page = 1; apply(); }); }
  if (textIn) { textIn.addEventListener("input", function () { state.q = textIn.value; state.page = 1; apply(); }); }
  if (prev) { prev.addEventListener("click", function () { state.page -= 1; apply(); }); }
  if (next) { next.addEventListener("click", function () { state.page += 1; apply(); }); }
  heads.forEach(function (th) {
    th.addEventListener("click", function () {
      var key = th.getAttribute("data-key");
      if (state.sort === key) { state.dir = state.dir === "asc" ? "desc" : "asc"; }
      else { state.sort = key; state.dir = th.getAttribute("data-type") === "num" ? "desc" : "asc"; }
      apply();
    });
  });
  // A hash without "=" is a jump to a card (#card-12), not a view: leave the view as it is.
  function isView() { return location.hash.indexOf("=") >= 0; }
  window.addEventListener("hashchange", function () { if (isView()) { readHash(); apply(); } });
  if (isView()) { readHash(); }
  apply();
  body.setAttribute("data-ready", "1");
})();
