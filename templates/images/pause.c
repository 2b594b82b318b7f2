// The pod sandbox ("pause") process: holds the pod's namespaces, reaps zombies, exits on SIGINT/SIGTERM.
// Built with `gcc -static` into a FROM scratch image by provisioner/images/build.ts.
#include <signal.h>
#include <unistd.h>
#include <sys/wait.h>
static void reap(int s) { (void)s; while (waitpid(-1, 0, WNOHANG) > 0) {} }
static void quit(int s) { (void)s; _exit(0); }
int main(void) {
  signal(SIGINT, quit); signal(SIGTERM, quit); signal(SIGCHLD, reap);
  for (;;) pause();
}
