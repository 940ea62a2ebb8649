// The static fjord-monitor binary, embedded as bytes (runtime.cc writes it to a memfd and
// fexecve's it). FJORD_MONITOR_PATH is set by CMake to the built binary.
#define FJORD_STR2(x) #x
#define FJORD_STR(x) FJORD_STR2(x)

__asm__(".section .rodata\n"
        ".global fjord_monitor_start\n"
        ".global fjord_monitor_end\n"
        ".balign 16\n"
        "fjord_monitor_start:\n"
        ".incbin \"" FJORD_STR(FJORD_MONITOR_PATH) "\"\n"
        "fjord_monitor_end:\n"
        ".byte 0\n"
        ".previous\n");
