// Loaded with `node --require` into a server child to measure the bcryptjs fallback: the native
// `bcrypt` package (an optional dependency) then fails to load, as on a platform without its binary.
'use strict';
const Module = require('node:module');
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  if (request === 'bcrypt') {
    const error = new Error("Cannot find module 'bcrypt' (hidden by bench/without-native-bcrypt.cjs)");
    error.code = 'MODULE_NOT_FOUND';
    throw error;
  }
  return resolve.call(this, request, ...rest);
};
