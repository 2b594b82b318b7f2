export { DockerDriver, nodeOrder } from "./driver.js";
export type { DockerDriverOptions } from "./driver.js";
export { ensureNodeImage, nodeImageRef, recipeHash, listNodeImages, NODE_IMAGE_REPO } from "./nodeimage.js";
export { checkDaemon } from "./cli.js";
export { networkName, planNodes, parseMemory, MAX_NODES } from "./plan.js";
