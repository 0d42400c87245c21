/** The `workerd` npm package's default export is the path of its binary. */
declare module "workerd" {
  const binaryPath: string;
  export default binaryPath;
}
