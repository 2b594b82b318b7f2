// The Service addresses bootstrap and addons need, from the service subnet (the spec's CIDR helpers).
import { nthAddress, splitList } from "../spec/cidr.js";

/** The address of the kube-dns Service: the tenth of the (first) service subnet, as kubeadm picks it. */
export function dnsServiceIP(serviceSubnet: string): string {
  return nthAddress(splitList(serviceSubnet)[0], 10);
}

/** The address of the `kubernetes` Service: the first of the (first) service subnet. */
export function apiServiceIP(serviceSubnet: string): string {
  return nthAddress(splitList(serviceSubnet)[0], 1);
}
