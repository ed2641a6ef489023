/* The book's page behaviour (deferred, no dependencies).
   Wide content scrolls inside its column with a visible cue: a block that is wider than its box (display
   maths, a table, a code block, a figure on a phone, an inline formula longer than a phone's line) becomes
   focusable (keyboard scrolling) and its host shows a fade at the side where more content waits; the fade
   follows the scroll position. The page is measured in one pass and changed in another (no forced layout per
   element), after parsing, after each batch of formulas MathJax typesets, when code cells near the window
   (book.css lays them out only then) and when the window is resized. */
(function () {
  "use strict";
  var SCROLLERS = [
    ".bd-article div.math", ".bd-article .pst-scrollable-table-container", ".bd-article div.highlight > pre",
    ".bd-article .cell_output .output.text_html", ".bd-article .cell_output .output > pre",
    ".bd-article .cell_output.book-figures", ".bd-article .book-inline-scroll"
  ].join(",");

  function host(el) {
    /* the element that does not scroll and can draw the cue over the scroller's edges */
    var parent = el.parentElement;
    if (parent && parent.classList.contains("book-scroll-host")) { return parent; }
    if (parent && el.tagName === "PRE" && parent.classList.contains("highlight")) {
      parent.classList.add("book-scroll-host");        /* a code block's own box */
      return parent;
    }
    var wrap = document.createElement(el.tagName === "SPAN" ? "span" : "div");
    wrap.className = "book-scroll-host";
    el.parentNode.insertBefore(wrap, el);
    wrap.appendChild(el);
    return wrap;
  }

  function update(el) {
    var h = el.__bookHost, max = el.scrollWidth - el.clientWidth;
    h.classList.toggle("book-more-left", el.scrollLeft > 1);
    h.classList.toggle("book-more-right", el.scrollLeft < max - 1);
  }

  function rendered(el) {
    return !el.checkVisibility || el.checkVisibility({contentVisibilityAuto: true});
  }

  function markAll() {
    var art = document.querySelector(".bd-article");
    if (!art) { return; }
    /* measure: inline formulas longer than their line, blocks wider than their box */
    var right = art.getBoundingClientRect().right, wide = [], inline = art.querySelectorAll("mjx-container:not([display=true])");
    for (var i = 0; i < inline.length; i++) {
      var m = inline[i], r = m.getBoundingClientRect().right;
      if (r <= right + 1 || m.parentElement.classList.contains("book-inline-scroll")) { continue; }
      var block = m.parentElement.closest("p, li, td, th, dd, dt, div");   /* a formula in a scrolling table is fine */
      if (!block || r > block.getBoundingClientRect().right + 1) { wide.push(m); }
    }
    /* change: each long inline formula gets a scroll box of its own (the formula is never a Tab stop) */
    wide.forEach(function (m) {
      var box = document.createElement("span");
      box.className = "book-inline-scroll";
      m.parentNode.insertBefore(box, m);
      box.appendChild(m);
    });
    /* a code cell far from the window is not laid out (book.css: content-visibility): it is measured when it
       nears the window (contentvisibilityautostatechange), not now, which would lay it out */
    var found = art.querySelectorAll(SCROLLERS), all = [], over = [], later = [];
    for (i = 0; i < found.length; i++) { (rendered(found[i]) ? all : later).push(found[i]); }
    for (i = 0; i < all.length; i++) { over.push(all[i].scrollWidth > all[i].clientWidth + 1); }
    focusableAhead(later, all, art);
    for (i = 0; i < all.length; i++) {
      var el = all[i];
      if (!over[i]) {
        if (el.__bookHost) { el.__bookHost.classList.remove("book-more-left", "book-more-right"); }
        if (el.classList.contains("book-scrolls-ahead")) {       /* the estimate was wrong: it fits */
          el.classList.remove("book-scrolls", "book-scrolls-ahead");
          el.removeAttribute("tabindex");
        }
        continue;
      }
      el.__bookHost = el.__bookHost || host(el);
      el.classList.add("book-scrolls");
      el.classList.remove("book-scrolls-ahead");
      if (!el.hasAttribute("tabindex")) { el.setAttribute("tabindex", "0"); }
      if (!el.__bookScroll) {
        el.__bookScroll = update.bind(null, el);
        el.addEventListener("scroll", el.__bookScroll, {passive: true});
      }
    }
    for (i = 0; i < all.length; i++) { if (over[i]) { update(all[i]); } }
  }

  /* A block not laid out yet is still a scroll region for the keyboard and for assistive technology: one
     whose text is wider than its box is focusable from the start, without laying it out (a canvas measures
     its longest line, or a table row's cells, in the block's font; the box is its cell's width less the
     margins a laid-out block of the same kind has). Its cue comes when it is measured for real. */
  var ruler = null, inset = {};
  function textWidth(text, font) {
    ruler = ruler || document.createElement("canvas").getContext("2d");
    ruler.font = font;
    return ruler.measureText(text).width;
  }

  function kind(el) { return el.tagName + (el.closest(".cell_output") ? " out" : " in"); }

  function focusableAhead(blocks, laid, art) {
    laid.forEach(function (el) {       /* how much narrower than its cell a block of each kind is */
      var cell = el.closest("div.cell");
      if (cell && !(kind(el) in inset)) { inset[kind(el)] = cell.clientWidth - el.clientWidth; }
    });
    var wide = [], fits = [], at = art.clientWidth;
    blocks.forEach(function (el) {
      var ours = el.classList.contains("book-scrolls-ahead");
      if (el.__bookAhead === at || (el.hasAttribute("tabindex") && !ours)) { return; }
      el.__bookAhead = at;                                  /* estimated once per column width */
      var cell = el.closest("div.cell") || art, style = getComputedStyle(el), font = style.font, w = 0;
      if (el.tagName === "PRE") {
        el.textContent.split("\n").forEach(function (line) { w = Math.max(w, textWidth(line, font)); });
        w += parseFloat(style.paddingLeft) + parseFloat(style.paddingRight);
      } else {
        var table = el.querySelector("table");
        if (!table) { return; }
        font = getComputedStyle(table).font;
        el.querySelectorAll("tr").forEach(function (tr) {
          var row = 0;
          for (var c = 0; c < tr.children.length; c++) { row += textWidth(tr.children[c].textContent.trim(), font) + 12; }
          w = Math.max(w, row);
        });
      }
      var box = cell.clientWidth - (kind(el) in inset ? inset[kind(el)] : 24);
      if (w > box + 1) { wide.push(el); } else if (ours) { fits.push(el); }
    });
    fits.forEach(function (el) { el.removeAttribute("tabindex"); el.classList.remove("book-scrolls", "book-scrolls-ahead"); });
    wide.forEach(function (el) {                            /* measured all, then changed */
      el.setAttribute("tabindex", "0");
      el.classList.add("book-scrolls", "book-scrolls-ahead");
    });
  }

  /* an inline formula keeps the punctuation that follows it on its line ("N = 36" then ")," alone below) */
  function bindPunctuation() {
    var all = document.querySelectorAll(".bd-article mjx-container:not([display=true])");
    for (var i = 0; i < all.length; i++) {
      var m = all[i];
      /* the formula's outermost box: Sphinx's span.math, then a scroll box of its own */
      while (!m.nextSibling && m.parentElement && m.parentElement.matches("span.math, .book-inline-scroll")) { m = m.parentElement; }
      var next = m.nextSibling, hit = next && next.nodeType === 3 && /^[)\].,;:!?，。；：！？）、]+/.exec(next.data);
      if (!hit || m.parentElement.classList.contains("book-nowrap")) { continue; }
      var wrap = document.createElement("span");
      wrap.className = "book-nowrap";
      m.parentNode.insertBefore(wrap, m);
      wrap.appendChild(m);
      wrap.appendChild(document.createTextNode(hit[0]));
      next.data = next.data.slice(hit[0].length);
    }
  }

  function start() {
    markAll();
    var timer = null, shown = null;
    window.addEventListener("resize", function () { clearTimeout(timer); timer = setTimeout(markAll, 150); });
    /* an opened solution (<details>) shows a code block that was not laid out: measure it now */
    document.addEventListener("toggle", function (e) { if (e.target.open) { markAll(); } }, true);
    document.addEventListener("contentvisibilityautostatechange", function (e) {
      if (!e.skipped && !shown) { shown = setTimeout(function () { shown = null; markAll(); }, 50); }
    }, true);
    /* formulas change width when MathJax has typeset them; MathJax typesets lazily (a formula when it nears
       the window), so each batch it inserts is bound and measured again (once per batch, not per formula) */
    var tries = 0, wait = setInterval(function () {
      if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
        clearInterval(wait); MathJax.startup.promise.then(function () { afterTypeset(); watchTypeset(); });
      } else if (++tries > 40) { clearInterval(wait); }
    }, 250);
  }

  function afterTypeset() { bindPunctuation(); markAll(); }

  function watchTypeset() {
    var art = document.querySelector(".bd-article");
    if (!art || !window.MutationObserver) { return; }
    var pending = null, watch = new MutationObserver(function (records) {
      for (var i = 0; i < records.length; i++) {
        var added = records[i].addedNodes;
        for (var j = 0; j < added.length; j++) {
          if (added[j].nodeName === "MJX-CONTAINER" || (added[j].closest && records[i].target.closest &&
              records[i].target.closest("mjx-container"))) {
            if (!pending) {
              pending = setTimeout(function () { pending = null; afterTypeset(); watch.takeRecords(); }, 100);
            }
            return;
          }
        }
      }
    });
    watch.observe(art, {childList: true, subtree: true});
  }

  /* Search results quote the page's source text, where a formula is still TeX ("\\(\\tilde{X}\\)"): quote
     formulas as plain text instead (X̃), so a snippet reads as the page does. Only the search page has Search. */
  var TEX_SYMBOLS = {
    alpha: "α", beta: "β", gamma: "γ", delta: "δ", epsilon: "ε", lambda: "λ", mu: "μ", pi: "π", sigma: "σ",
    tau: "τ", phi: "φ", odot: "⊙", otimes: "⊗", oplus: "⊕", times: "×", cdot: "·", cdots: "⋯", ldots: "…",
    dots: "…", in: "∈", to: "→", rightarrow: "→", leftarrow: "←", le: "≤", leq: "≤", ge: "≥", geq: "≥",
    approx: "≈", neq: "≠", sum: "Σ", prod: "Π", infty: "∞", top: "ᵀ", mid: "|", max: "max", min: "min",
    exp: "exp", log: "log", softmax: "softmax", R: "ℝ"
  };
  var TEX_ACCENTS = {tilde: "\u0303", hat: "\u0302", bar: "\u0304", vec: "\u20d7"};

  function plainTex(tex) {
    var s = tex.replace(/^\s*(\\\(|\\\[|\$\$?)|(\\\)|\\\]|\$\$?)\s*$/g, "");
    for (var n = 0; n < 4; n++) {      /* innermost groups first: \frac{\sqrt{d}}{2} */
      s = s.replace(/\\frac\{([^{}]*)\}\{([^{}]*)\}/g, "($1)/($2)")
           .replace(/\\sqrt\{([^{}]*)\}/g, "√($1)")
           .replace(/\\mathbb\{R\}/g, "ℝ")
           .replace(/\\(tilde|hat|bar|vec)\{([^{}])\}/g, function (m, a, x) { return x + TEX_ACCENTS[a]; })
           .replace(/\\(?:mathrm|mathbf|mathit|mathcal|operatorname|text|textrm|boldsymbol|tilde|hat|bar|vec)\{([^{}]*)\}/g, "$1")
           .replace(/([_^])\{([^{}]*)\}/g, function (m, op, x) { return x.length > 1 ? op + "(" + x + ")" : op + x; });
    }
    return s.replace(/\\(?:left|right|big|Big|bigg|Bigg)\b\s*/g, "")
            .replace(/\\[,;:! ]|\\quad|\\qquad|~/g, " ")
            .replace(/\\([A-Za-z]+)/g, function (m, w) { return TEX_SYMBOLS[w] || w; })
            .replace(/\\([{}%&#_$|])/g, "$1")
            .replace(/\^ᵀ/g, "ᵀ").replace(/[{}]/g, "").replace(/\s+/g, " ").trim();
  }

  function plainSearchSnippets() {
    var S = window.Search;
    if (!S || !S.htmlToText || S.htmlToText.__plainTex) { return; }
    var original = S.htmlToText;
    S.htmlToText = function (html, anchor) {
      var doc = new DOMParser().parseFromString(html, "text/html");
      doc.querySelectorAll(".math").forEach(function (m) { m.textContent = " " + plainTex(m.textContent) + " "; });
      return original.call(this, doc.documentElement.outerHTML, anchor);
    };
    S.htmlToText.__plainTex = true;
  }
  window.bookPlainTex = plainTex;      /* for the site tests */

  function ready() { start(); plainSearchSnippets(); }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", ready); } else { ready(); }
})();
