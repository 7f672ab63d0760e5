"use strict";(self.rspackChunktrenv_lab=self.rspackChunktrenv_lab||[]).push([[266],{646(e,t,r){var n=r(601),a=r.n(n),o=r(314),i=(r.n(o))()(a());i.push([e.id,`/* The Outputs panel. JupyterLab's theme variables keep it readable in light and dark. */
.trenv-panel {
  overflow-y: auto;
  padding: 8px 12px;
  background: var(--jp-layout-color1);
  color: var(--jp-ui-font-color1);
  font-size: var(--jp-ui-font-size1);
}

.trenv-panel header {
  display: flex;
  justify-content: space-between;
  align-items: center;
}

.trenv-panel h2 {
  font-size: var(--jp-ui-font-size3);
  margin: 4px 0;
}

.trenv-panel h3 {
  font-size: var(--jp-ui-font-size2);
  margin: 14px 0 6px;
}

.trenv-panel label {
  display: block;
}

.trenv-panel input.trenv-title,
.trenv-panel textarea {
  width: 100%;
  box-sizing: border-box;
  margin: 4px 0;
}

.trenv-output {
  border: 1px solid var(--jp-border-color2);
  border-radius: 3px;
  padding: 6px;
  margin-bottom: 6px;
}

.trenv-output-head {
  display: flex !important;
  flex-wrap: wrap;
  gap: 6px;
  align-items: center;
  font-weight: 600;
}

.trenv-output-name {
  flex: 1;
  min-width: 0;
  overflow-wrap: anywhere;
}

.trenv-status,
.trenv-state {
  border-radius: 8px;
  padding: 0 6px;
  font-size: var(--jp-ui-font-size0);
  text-transform: uppercase;
}

.trenv-status-pass {
  background: var(--jp-success-color3);
}

.trenv-status-review {
  background: var(--jp-warn-color3);
}

.trenv-status-fail,
.trenv-reason-fail {
  background: var(--jp-error-color3);
}

.trenv-reasons {
  margin: 4px 0;
  padding-left: 16px;
}

.trenv-muted {
  color: var(--jp-ui-font-color2);
  font-size: var(--jp-ui-font-size0);
}

.trenv-error,
.trenv-message[data-kind='error'] {
  color: var(--jp-error-color1);
}

.trenv-message[data-kind='ok'] {
  color: var(--jp-success-color1);
}

.trenv-request {
  display: flex;
  flex-direction: column;
  margin-bottom: 4px;
}

.trenv-state {
  align-self: flex-start;
  background: var(--jp-layout-color3);
}
`,""]),r.d(t,{},{A:i})},314(e){e.exports=function(e){var t=[];return t.toString=function(){return this.map(function(t){var r="",n=void 0!==t[5];return t[4]&&(r+="@supports (".concat(t[4],") {")),t[2]&&(r+="@media ".concat(t[2]," {")),n&&(r+="@layer".concat(t[5].length>0?" ".concat(t[5]):""," {")),r+=e(t),n&&(r+="}"),t[2]&&(r+="}"),t[4]&&(r+="}"),r}).join("")},t.i=function(e,r,n,a,o){"string"==typeof e&&(e=[[null,e,void 0]]);var i={};if(n)for(var s=0;s<this.length;s++){var c=this[s][0];null!=c&&(i[c]=!0)}for(var p=0;p<e.length;p++){var l=[].concat(e[p]);n&&i[l[0]]||(void 0!==o&&(void 0===l[5]||(l[1]="@layer".concat(l[5].length>0?" ".concat(l[5]):""," {").concat(l[1],"}")),l[5]=o),r&&(l[2]&&(l[1]="@media ".concat(l[2]," {").concat(l[1],"}")),l[2]=r),a&&(l[4]?(l[1]="@supports (".concat(l[4],") {").concat(l[1],"}"),l[4]=a):l[4]="".concat(a)),t.push(l))}},t}},601(e){e.exports=function(e){return e[1]}},665(e,t,r){r.r(t);var n=r(72),a=r.n(n),o=r(825),i=r.n(o),s=r(659),c=r.n(s),p=r(56),l=r.n(p),u=r(540),d=r.n(u),v=r(113),f=r.n(v),m=r(646),h={};h.styleTagTransform=f(),h.setAttributes=l(),h.insert=c().bind(null,"head"),h.domAPI=i(),h.insertStyleElement=d(),a()(m.A,h);let g=m.A&&m.A.locals?m.A.locals:void 0;r.d(t,{},{default:g})},72(e){var t=[];function r(e){for(var r=-1,n=0;n<t.length;n++)if(t[n].identifier===e){r=n;break}return r}function n(e,n){for(var a={},o=[],i=0;i<e.length;i++){var s=e[i],c=n.base?s[0]+n.base:s[0],p=a[c]||0,l="".concat(c," ").concat(p);a[c]=p+1;var u=r(l),d={css:s[1],media:s[2],sourceMap:s[3],supports:s[4],layer:s[5]};if(-1!==u)t[u].references++,t[u].updater(d);else{var v=function(e,t){var r=t.domAPI(t);return r.update(e),function(t){t?(t.css!==e.css||t.media!==e.media||t.sourceMap!==e.sourceMap||t.supports!==e.supports||t.layer!==e.layer)&&r.update(e=t):r.remove()}}(d,n);n.byIndex=i,t.splice(i,0,{identifier:l,updater:v,references:1})}o.push(l)}return o}e.exports=function(e,a){var o=n(e=e||[],a=a||{});return function(e){e=e||[];for(var i=0;i<o.length;i++){var s=r(o[i]);t[s].references--}for(var c=n(e,a),p=0;p<o.length;p++){var l=r(o[p]);0===t[l].references&&(t[l].updater(),t.splice(l,1))}o=c}}},659(e){var t={};e.exports=function(e,r){var n=function(e){if(void 0===t[e]){var r=document.querySelector(e);if(window.HTMLIFrameElement&&r instanceof window.HTMLIFrameElement)try{r=r.contentDocument.head}catch(e){r=null}t[e]=r}return t[e]}(e);if(!n)throw Error("Couldn't find a style target. This probably means that the value for the 'insert' parameter is invalid.");n.appendChild(r)}},540(e){e.exports=function(e){var t=document.createElement("style");return e.setAttributes(t,e.attributes),e.insert(t,e.options),t}},56(e,t,r){e.exports=function(e){var t=r.nc;t&&e.setAttribute("nonce",t)}},825(e){e.exports=function(e){if("u"<typeof document)return{update:function(){},remove:function(){}};var t=e.insertStyleElement(e);return{update:function(r){var n,a,o;n="",r.supports&&(n+="@supports (".concat(r.supports,") {")),r.media&&(n+="@media ".concat(r.media," {")),(a=void 0!==r.layer)&&(n+="@layer".concat(r.layer.length>0?" ".concat(r.layer):""," {")),n+=r.css,a&&(n+="}"),r.media&&(n+="}"),r.supports&&(n+="}"),(o=r.sourceMap)&&"u">typeof btoa&&(n+="\n/*# sourceMappingURL=data:application/json;base64,".concat(btoa(unescape(encodeURIComponent(JSON.stringify(o))))," */")),e.styleTagTransform(n,t,e.options)},remove:function(){var e;null===(e=t).parentNode||e.parentNode.removeChild(e)}}}},113(e){e.exports=function(e,t){if(t.styleSheet)t.styleSheet.cssText=e;else{for(;t.firstChild;)t.removeChild(t.firstChild);t.appendChild(document.createTextNode(e))}}}}]);