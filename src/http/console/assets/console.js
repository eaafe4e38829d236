// musubi console: copy buttons. Pages work without script; this only adds copying.
(function () {
  "use strict";
  function flash(button) {
    var label = button.textContent;
    button.textContent = button.getAttribute("data-copied") || label;
    button.classList.add("done");
    setTimeout(function () { button.textContent = label; button.classList.remove("done"); }, 1200);
  }
  function copy(text, button) {
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(text).then(function () { flash(button); }, function () {});
    }
  }
  document.addEventListener("click", function (e) {
    var b = e.target.closest("[data-copy]");
    if (b) { copy(b.getAttribute("data-copy"), b); return; }
    var all = e.target.closest("[data-copy-all]");
    if (all) {
      var table = document.querySelector(all.getAttribute("data-copy-all"));
      if (!table) { return; }
      var values = Array.prototype.map.call(table.querySelectorAll("code.value"), function (c) { return c.textContent; });
      copy(values.join("\n"), all);
    }
  });
})();
