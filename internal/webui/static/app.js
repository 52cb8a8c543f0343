// The local page's only script: copy buttons on the mail client setup
// page. Without it the page works; the values can be selected and copied
// by hand.
'use strict';
(function () {
  function say(msg) {
    var s = document.getElementById('copy-status');
    if (s) { s.textContent = msg; }
  }
  function fallback(el) {
    var r = document.createRange();
    r.selectNodeContents(el);
    var sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(r);
    try { return document.execCommand('copy'); } catch (e) { return false; }
  }
  document.addEventListener('DOMContentLoaded', function () {
    var buttons = document.querySelectorAll('button[data-copy]');
    buttons.forEach(function (b) {
      b.hidden = false;
      b.addEventListener('click', function () {
        var el = document.getElementById(b.getAttribute('data-copy'));
        if (!el) { return; }
        var what = b.getAttribute('data-what') || 'it';
        var text = el.textContent;
        var ok = function () { say('Copied ' + what + '.'); };
        var bad = function () {
          say(fallback(el) ? 'Copied ' + what + '.' : 'Could not copy ' + what + ': it is selected, copy it with the keyboard.');
        };
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(text).then(ok, bad);
        } else {
          bad();
        }
      });
    });
  });
})();
