// latchkey front desk: live refresh of fragments, copy to clipboard,
// confirmations and full-screen QR. No dependencies.
(function () {
  'use strict';

  // Elements with data-poll="url" are refreshed every data-interval ms
  // (default 5000) while the page is visible.
  document.querySelectorAll('[data-poll]').forEach(function (el) {
    var url = el.getAttribute('data-poll');
    var every = parseInt(el.getAttribute('data-interval') || '5000', 10);
    var busy = false;
    setInterval(function () {
      if (document.hidden || busy) { return; }
      busy = true;
      fetch(url, { credentials: 'same-origin', headers: { 'Accept': 'text/html' } })
        .then(function (res) {
          if (res.redirected || res.status === 401) { window.location.reload(); return null; }
          return res.ok ? res.text() : null;
        })
        .then(function (html) {
          if (html !== null && html !== undefined && el.innerHTML !== html) { el.innerHTML = html; }
        })
        .catch(function () {})
        .then(function () { busy = false; });
    }, every);
  });

  // On a phone the nav scrolls sideways: bring the current page's link
  // into view, so it is not hidden past the edge.
  var current = document.querySelector('header.top nav [aria-current=page]');
  if (current && current.parentNode.scrollWidth > current.parentNode.clientWidth) {
    var nav = current.parentNode;
    nav.scrollLeft = current.offsetLeft - (nav.clientWidth - current.offsetWidth) / 2;
  }

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    var ta = document.createElement('textarea');
    ta.value = text;
    ta.setAttribute('readonly', '');
    ta.style.position = 'absolute';
    ta.style.left = '-9999px';
    document.body.appendChild(ta);
    ta.select();
    var ok = false;
    try { ok = document.execCommand('copy'); } catch (e) { ok = false; }
    document.body.removeChild(ta);
    return ok ? Promise.resolve() : Promise.reject(new Error('copy failed'));
  }

  document.addEventListener('click', function (e) {
    var b = e.target.closest('[data-copy]');
    if (b) {
      e.preventDefault();
      var label = b.textContent;
      copyText(b.getAttribute('data-copy')).then(function () {
        b.textContent = 'Copied';
      }, function () {
        b.textContent = 'Copy failed: select the link by hand';
      }).then(function () {
        setTimeout(function () { b.textContent = label; }, 2000);
      });
      return;
    }
    var f = e.target.closest('[data-fullscreen]');
    if (f) {
      e.preventDefault();
      var target = document.getElementById(f.getAttribute('data-fullscreen')) || document.documentElement;
      if (document.fullscreenElement) { document.exitFullscreen(); }
      else if (target.requestFullscreen) { target.requestFullscreen(); }
    }
  });

  document.addEventListener('submit', function (e) {
    var msg = e.target.getAttribute('data-confirm');
    if (msg && !window.confirm(msg)) { e.preventDefault(); }
  });
})();
