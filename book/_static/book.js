/* The book's page behaviour (deferred, no dependencies).
   Wide content scrolls inside its column with a visible cue: a block that is wider than its box (display
   maths, a table, a code block, a figure on a phone, an inline formula longer than a phone's line) becomes
   focusable (keyboard scrolling) and its host shows a fade at the side where more content waits; the fade
   follows the scroll position. The page is measured in one pass and changed in another (no forced layout per
   element), after parsing, once MathJax has typeset, and when the window is resized. */
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
    var all = art.querySelectorAll(SCROLLERS), over = [];
    for (i = 0; i < all.length; i++) { over.push(all[i].scrollWidth > all[i].clientWidth + 1); }
    for (i = 0; i < all.length; i++) {
      var el = all[i];
      if (!over[i]) {
        if (el.__bookHost) { el.__bookHost.classList.remove("book-more-left", "book-more-right"); }
        continue;
      }
      el.__bookHost = el.__bookHost || host(el);
      el.classList.add("book-scrolls");
      if (!el.hasAttribute("tabindex")) { el.setAttribute("tabindex", "0"); }
      if (!el.__bookScroll) {
        el.__bookScroll = update.bind(null, el);
        el.addEventListener("scroll", el.__bookScroll, {passive: true});
      }
    }
    for (i = 0; i < all.length; i++) { if (over[i]) { update(all[i]); } }
  }

  function start() {
    markAll();
    var timer = null;
    window.addEventListener("resize", function () { clearTimeout(timer); timer = setTimeout(markAll, 150); });
    /* formulas change width when MathJax has typeset them */
    var tries = 0, wait = setInterval(function () {
      if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
        clearInterval(wait); MathJax.startup.promise.then(markAll);
      } else if (++tries > 40) { clearInterval(wait); }
    }, 250);
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
