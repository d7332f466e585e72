// medguard console: progressive enhancement only; every page works without it.
// Idle sign-out: after the session's idle timeout without input, go to the
// sign-in page (the server has ended the session by then anyway).
(function () {
  "use strict";
  var secs = parseInt(document.body.getAttribute("data-idle-seconds") || "0", 10);
  if (secs > 0) {
    var timer;
    var reset = function () {
      clearTimeout(timer);
      timer = setTimeout(function () { window.location.assign("/login?m=expired"); }, secs * 1000);
    };
    ["keydown", "mousedown", "touchstart", "scroll"].forEach(function (e) {
      document.addEventListener(e, reset, { passive: true });
    });
    reset();
  }
})();
