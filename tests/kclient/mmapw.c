/*
 * mmapw.c - write through a shared mapping, for the kernel-client tests
 * (the guest's busybox has no applet that does). run.sh builds it static
 * on the host and puts it in a lower layer; the guest runs it from the
 * export. Usage: mmapw FILE OFFSET TEXT - maps FILE shared, copies TEXT at
 * OFFSET (inside the file), msync(MS_SYNC)s and unmaps. Exit 0 on success.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct stat st;
	size_t off, len;
	char *p;
	int fd;

	if (argc != 4) {
		fprintf(stderr, "usage: mmapw FILE OFFSET TEXT\n");
		return 2;
	}
	off = strtoul(argv[2], NULL, 10);
	len = strlen(argv[3]);
	fd = open(argv[1], O_RDWR);
	if (fd < 0 || fstat(fd, &st) < 0) {
		perror(argv[1]);
		return 1;
	}
	if (off + len > (size_t)st.st_size) {
		fprintf(stderr, "mmapw: %zu bytes at %zu do not fit in %lld\n", len, off,
			(long long)st.st_size);
		return 1;
	}
	p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	memcpy(p + off, argv[3], len);
	if (msync(p, (size_t)st.st_size, MS_SYNC) < 0) {
		perror("msync");
		return 1;
	}
	munmap(p, (size_t)st.st_size);
	close(fd);
	return 0;
}
