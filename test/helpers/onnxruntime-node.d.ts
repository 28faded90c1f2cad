// onnxruntime-node 1.17.0 (pinned: the last release without an install script, package.json)
// ships no type declarations; its API is onnxruntime-common's, which it re-exports and which
// does ship them.
declare module 'onnxruntime-node' {
  export * from 'onnxruntime-common';
}
