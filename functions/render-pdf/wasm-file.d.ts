// esbuild's file loader (Loader .wasm=file in template.yaml): importing a .wasm gives the path of
// the copy it places in the bundle, relative to the bundle.
declare module '*.wasm' {
  const path: string;
  export default path;
}
