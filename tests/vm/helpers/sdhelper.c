/* runcible.oci VM tests: a container process that speaks systemd's protocols (built static by the test).
 *
 *   sdhelper ready SECONDS   sleep, then send "STATUS=...\nREADY=1" to $NOTIFY_SOCKET; then wait for SIGTERM
 *   sdhelper serve MESSAGE   socket activation: accept on fd 3 (LISTEN_FDS, LISTEN_PID must be ours), answer
 *                            "MESSAGE pid=PID" to every connection; SIGTERM ends it
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static void bye(int sig) { (void)sig; _exit(0); }

int main(int argc, char **argv) {
    signal(SIGTERM, bye);
    if (argc == 3 && strcmp(argv[1], "ready") == 0) {
        sleep((unsigned)atoi(argv[2]));
        const char *path = getenv("NOTIFY_SOCKET");
        if (!path) { fprintf(stderr, "no NOTIFY_SOCKET\n"); return 3; }
        int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
        struct sockaddr_un addr;
        memset(&addr, 0, sizeof addr);
        addr.sun_family = AF_UNIX;
        strncpy(addr.sun_path, path, sizeof addr.sun_path - 1);
        const char *message = "STATUS=ready after the sleep\nREADY=1";
        if (sendto(fd, message, strlen(message), 0, (struct sockaddr *)&addr, sizeof addr) < 0) {
            perror("sendto");
            return 4;
        }
        printf("sent READY=1\n");
        fflush(stdout);
        for (;;) pause();
    }
    if (argc == 3 && strcmp(argv[1], "serve") == 0) {
        const char *fds = getenv("LISTEN_FDS"), *pid = getenv("LISTEN_PID");
        if (!fds || atoi(fds) < 1 || !pid || atoi(pid) != (int)getpid()) {
            fprintf(stderr, "no sockets for me: LISTEN_FDS=%s LISTEN_PID=%s pid=%d\n", fds ? fds : "",
                    pid ? pid : "", (int)getpid());
            return 5;
        }
        for (;;) {
            int conn = accept(3, NULL, NULL);
            if (conn < 0) { perror("accept"); return 6; }
            dprintf(conn, "%s pid=%d fds=%s\n", argv[2], (int)getpid(), fds);
            close(conn);
        }
    }
    fprintf(stderr, "usage: sdhelper ready SECONDS | serve MESSAGE\n");
    return 2;
}
