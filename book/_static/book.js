/* The book's page behaviour (deferred, no dependencies).
   Wide content scrolls inside its column with a visible cue: a block that is wider than its box (display
   maths, a table, a code block, a figure on a phone) becomes focusable (keyboard scrolling) and its host
   shows a fade at the side where more content waits; the fade follows the scroll position. */
(function () {
  "use strict";
  var SCROLLERS = [
    ".bd-article div.math", ".bd-article .pst-scrollable-table-container", ".bd-article div.highlight > pre",
    ".bd-article .cell_output .output.text_html", ".bd-article .cell_output .output > pre",
    ".bd-article .cell_output.book-figures"
  ].join(",");

  function host(el) {
    /* the element that does not scroll and can draw the cue over the scroller's edges */
    if (el.parentElement && el.parentElement.classList.contains("book-scroll-host")) { return el.parentElement; }
    var parent = el.parentElement;
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

  function update(el, h) {
    var max = el.scrollWidth - el.clientWidth;
    h.classList.toggle("book-more-left", el.scrollLeft > 1);
    h.classList.toggle("book-more-right", el.scrollLeft < max - 1);
  }

  function mark(el) {
    if (el.scrollWidth <= el.clientWidth + 1) {
      if (el.__bookHost) { el.__bookHost.classList.remove("book-more-left", "book-more-right"); }
      return;
    }
    var h = el.__bookHost || (el.__bookHost = host(el));
    el.classList.add("book-scrolls");
    if (!el.hasAttribute("tabindex")) { el.setAttribute("tabindex", "0"); }
    if (!el.__bookScroll) {
      el.__bookScroll = function () { update(el, h); };
      el.addEventListener("scroll", el.__bookScroll, {passive: true});
    }
    update(el, h);
  }

  /* an inline formula longer than the column (on a phone): it scrolls on its own, inside its line */
  function markWideInline() {
    var art = document.querySelector(".bd-article");
    if (!art) { return; }
    var right = art.getBoundingClientRect().right, all = art.querySelectorAll("mjx-container:not([display=true])");
    for (var i = 0; i < all.length; i++) {
      var m = all[i];
      var block = m.parentElement.closest("p, li, td, th, dd, dt, div");   /* a formula in a scrolling table is fine */
      if (m.parentElement.classList.contains("book-inline-scroll") || m.getBoundingClientRect().right <= right + 1
          || (block && m.getBoundingClientRect().right <= block.getBoundingClientRect().right + 1)) { continue; }
      var box = document.createElement("span");     /* the scroller: the formula itself is never a Tab stop */
      box.className = "book-inline-scroll";
      m.parentNode.insertBefore(box, m);
      box.appendChild(m);
    }
  }

  function markAll() {
    markWideInline();
    var all = document.querySelectorAll(SCROLLERS + ",.bd-article .book-inline-scroll");
    for (var i = 0; i < all.length; i++) { mark(all[i]); }
  }

  function start() {
    markAll();
    window.addEventListener("resize", markAll);
    /* figures and maths change width when they load or are typeset */
    window.addEventListener("load", markAll);
    document.addEventListener("load", function (e) { if (e.target.tagName === "IMG") { markAll(); } }, true);
    if (window.MathJax && MathJax.startup && MathJax.startup.promise) { MathJax.startup.promise.then(markAll); }
    else { var tries = 0, wait = setInterval(function () {
      if (window.MathJax && MathJax.startup && MathJax.startup.promise) { clearInterval(wait); MathJax.startup.promise.then(markAll); }
      else if (++tries > 40) { clearInterval(wait); }
    }, 250); }
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
