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
    if (el.tagName === "PRE" && el.parentElement && el.parentElement.classList.contains("highlight")) {
      el.parentElement.classList.add("book-scroll-host");
      return el.parentElement;
    }
    var wrap = document.createElement("div");
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

  function markAll() {
    var all = document.querySelectorAll(SCROLLERS);
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
