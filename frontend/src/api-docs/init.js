// Starts Swagger UI on the server's /api/docs page (copied to dist/api-docs/init.js by the build,
// beside swagger-ui-bundle.js and swagger-ui.css from swagger-ui-dist). A file, not an inline
// script: the server's Content-Security-Policy is default-src 'self'.
//
// "Try it out" requests carry the key or token the dashboard remembers (localStorage
// fms.credential): an fms_ API key as X-API-Key, anything else as Authorization: Bearer (the
// rule of src/shared/auth.ts). A credential entered with Swagger's own Authorize button wins.
/* global SwaggerUIBundle */
(function () {
  'use strict';
  var KEY = 'fms.credential';

  function credential() {
    try {
      return (window.localStorage.getItem(KEY) || '').trim();
    } catch (e) {
      return '';
    }
  }

  function note() {
    var c = credential();
    var bar = document.createElement('div');
    bar.setAttribute('data-testid', 'docs-auth');
    bar.style.cssText =
      'font:13px/1.4 system-ui,sans-serif;padding:8px 20px;background:#0b1120;color:#e2e8f0;' +
      'display:flex;gap:16px;align-items:center;flex-wrap:wrap';
    var title = document.createElement('b');
    title.textContent = 'fms API';
    var text = document.createElement('span');
    text.textContent = c
      ? 'Requests use the ' + (c.indexOf('fms_') === 0 ? 'API key' : 'token') + ' the dashboard remembers (' +
        (c.indexOf('fms_') === 0 ? 'X-API-Key' : 'Authorization: Bearer') + ').'
      : 'Not signed in: requests go without credentials. Sign in on the dashboard, or use Authorize below.';
    // say whether the server wants credentials at all (/api/info is public)
    fetch('/api/info')
      .then(function (r) {
        return r.ok ? r.json() : null;
      })
      .then(function (info) {
        if (!info || typeof info.auth_required !== 'boolean') return;
        if (!info.auth_required) text.textContent = 'Authentication is off (demo mode): requests need no credentials.';
        else if (!c) text.textContent = 'This server requires authentication: sign in on the dashboard first, or use Authorize below.';
      })
      .catch(function () {});
    var back = document.createElement('a');
    back.href = '/';
    back.textContent = '← dashboard';
    back.style.color = '#7dd3fc';
    bar.appendChild(title);
    bar.appendChild(text);
    bar.appendChild(back);
    var root = document.getElementById('swagger-ui');
    if (root && root.parentNode) root.parentNode.insertBefore(bar, root);
    document.body.style.margin = '0';
  }

  function addCredential(req) {
    var c = credential();
    var headers = req.headers || (req.headers = {});
    var has = Object.keys(headers).some(function (k) {
      return /^(x-api-key|authorization)$/i.test(k) && headers[k];
    });
    if (c && !has) {
      if (c.indexOf('fms_') === 0) headers['X-API-Key'] = c;
      else headers.Authorization = 'Bearer ' + c;
    }
    return req;
  }

  if (typeof SwaggerUIBundle !== 'function') {
    var root = document.getElementById('swagger-ui');
    if (root) root.textContent = 'swagger-ui-bundle.js did not load; the document is at /api/openapi.json.';
    return;
  }
  note();
  window.ui = SwaggerUIBundle({
    url: '/api/openapi.json',
    dom_id: '#swagger-ui',
    deepLinking: true,
    docExpansion: 'list',
    tryItOutEnabled: false,
    requestInterceptor: addCredential,
    // no badge from the public validator: nothing leaves this server (and the CSP would block it)
    validatorUrl: null,
  });
})();
