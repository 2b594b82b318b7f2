export { VirtualBoxDriver, vboxManagePath, vmFiles, type VirtualBoxOptions } from "./driver.js";
