; peerbench guest: a multiboot (v1) flat binary for `qemu -kernel`.
;
; It enters long mode, drops to ring 3 with SYSEXIT (under kvm_pvm ring 3
; runs natively while ring 0 is emulated, and the in-kernel emulator
; cannot do a protected-mode IRET), and from then on dirties RATE MiB per
; second of pseudo-randomly chosen 4 KiB pages in the region
; [START, START+SIZE) MiB, writing every byte of each page it picks.
; RATE 0 is the idle mode. Once a second it prints a heartbeat on COM1.
;
; Parameters come on the multiboot command line (qemu -append):
;   rate=MIB_PER_SEC start=MIB size=MIB
; (after the first word, which loaders set to the kernel's name).
; Serial lines, each ending in "\n":
;   peerbench-guest tsc_khz=K rate=R start=S size=Z   once, when it enters ring 3
;   hb SEQ dirtied=PAGES                             every second after that
;   peerbench-guest error: WHAT                      and the guest halts
;
; Time comes from RDTSC (native in ring 3), calibrated against PIT
; channel 2 before leaving ring 0. Interrupts stay off throughout: the
; guest has no IDT because it could not return from a handler.
;
; Build: nasm -f bin -o guest.bin guest.asm

BITS 32
ORG 0x100000

MB_MAGIC        equ 0x1BADB002
MB_FLAGS        equ (1 << 1) | (1 << 16) ; want memory info; the address fields below are valid
MB_BOOT_MAGIC   equ 0x2BADB002

COM1            equ 0x3f8
PIT_HZ          equ 1193182
PIT_COUNT       equ 59659                ; 50 ms of PIT ticks
MIB             equ 1 << 20
FIRST_FREE_MIB  equ 2                    ; the image, its tables and the multiboot data sit below 2 MiB
MAP_MIB         equ 4096                 ; the page tables identity-map the first 4 GiB

SEL_CODE64      equ 0x08                 ; also IA32_SYSENTER_CS: SYSEXIT to 64-bit uses +32 and +40
SEL_DATA        equ 0x10
SEL_CODE32      equ 0x18
SEL_UCODE64     equ 0x28 | 3
SEL_UDATA       equ 0x30 | 3

mb_header:
        dd MB_MAGIC
        dd MB_FLAGS
        dd -(MB_MAGIC + MB_FLAGS)
        dd mb_header                     ; header_addr
        dd mb_header                     ; load_addr
        dd load_end                      ; load_end_addr
        dd bss_end                       ; bss_end_addr
        dd start32                       ; entry_addr

start32:
        cli
        mov esp, boot_stack_top
        cmp eax, MB_BOOT_MAGIC
        jne near halt                    ; not loaded by a multiboot loader: nowhere to report
        mov [mbi], ebx
        lgdt [gdt_desc]
        jmp SEL_CODE32:.flat
.flat:
        mov ax, SEL_DATA
        mov ds, ax
        mov es, ax
        mov ss, ax
        mov fs, ax
        mov gs, ax
        call serial_init

        ; Memory: mem_upper (KiB above 1 MiB) bounds the region.
        mov ebx, [mbi]
        test dword [ebx], 1
        jz near err_nomem
        mov eax, [ebx + 8]
        shr eax, 10
        inc eax                          ; MiB of RAM from 0, below the PCI hole
        mov [ram_mib], eax

        ; Command line.
        test dword [ebx], 1 << 2
        jz .noargs
        mov esi, [ebx + 16]
        call parse_cmdline
.noargs:
        mov eax, [arg_start]
        cmp eax, FIRST_FREE_MIB
        jb near err_region
        mov ecx, [arg_size]
        test ecx, ecx
        jz near err_region
        add eax, ecx
        jc near err_region
        cmp eax, [ram_mib]
        ja near err_region
        cmp eax, MAP_MIB
        ja near err_region

        call calibrate_tsc

        ; Identity-map 4 GiB with 2 MiB pages, user-accessible. Accessed
        ; and Dirty are preset so the CPU never writes the tables.
        mov dword [pml4], pdpt + 0x27
        mov edi, pdpt
        mov eax, pd + 0x27
        mov ecx, 4
.pdpt:
        mov [edi], eax
        add edi, 8
        add eax, 4096
        loop .pdpt
        mov edi, pd
        xor eax, eax                     ; physical address, low 32 bits
        xor edx, edx                     ; high 32 bits
        mov ecx, 2048
.pd:
        mov ebx, eax
        or ebx, 0xe7                     ; present, writable, user, accessed, dirty, 2 MiB
        mov [edi], ebx
        mov [edi + 4], edx
        add edi, 8
        add eax, 2 * MIB
        adc edx, 0
        loop .pd

        mov eax, cr4
        or eax, 1 << 5                   ; PAE
        mov cr4, eax
        mov eax, pml4
        mov cr3, eax
        mov ecx, 0xC0000080              ; EFER
        rdmsr
        or eax, 1 << 8                   ; LME
        wrmsr
        mov eax, cr0
        or eax, 0x80000001               ; PG, PE
        mov cr0, eax
        jmp SEL_CODE64:long64

; serial_init: COM1 at 115200 8N1, FIFO on.
serial_init:
        mov dx, COM1 + 1
        xor al, al
        out dx, al                       ; no UART interrupts
        mov dx, COM1 + 3
        mov al, 0x80
        out dx, al                       ; DLAB
        mov dx, COM1
        mov al, 1
        out dx, al                       ; divisor 1: 115200 baud
        mov dx, COM1 + 1
        xor al, al
        out dx, al
        mov dx, COM1 + 3
        mov al, 0x03
        out dx, al                       ; 8N1
        mov dx, COM1 + 2
        mov al, 0xc7
        out dx, al                       ; FIFO on, cleared
        ret

; putc32: writes AL to COM1 once its transmitter is ready.
putc32:
        push edx
        push eax
        mov dx, COM1 + 5
.wait:
        in al, dx
        test al, 0x20
        jz .wait
        pop eax
        mov dx, COM1
        out dx, al
        pop edx
        ret

; puts32: writes the NUL-terminated string at ESI.
puts32:
        push eax
.next:
        lodsb
        test al, al
        jz .done
        call putc32
        jmp .next
.done:
        pop eax
        ret

; parse_cmdline: reads key=value tokens from the string at ESI, after
; the first token: loaders put the kernel's own name there.
parse_cmdline:
.name:
        mov al, [esi]
        test al, al
        jz .done
        inc esi
        cmp al, ' '
        jne .name
.skip:
        mov al, [esi]
        test al, al
        jz .done
        cmp al, ' '
        jne .token
        inc esi
        jmp .skip
.token:
        mov edi, key_rate
        mov ebx, arg_rate
        call match_key
        je .value
        mov edi, key_start
        mov ebx, arg_start
        call match_key
        je .value
        mov edi, key_size
        mov ebx, arg_size
        call match_key
        je .value
        jmp err_arg
.value:
        xor eax, eax
        xor ecx, ecx                     ; digits seen
.digit:
        movzx edx, byte [esi]
        sub edx, '0'
        cmp edx, 9
        ja .end
        imul eax, eax, 10
        jo err_arg
        add eax, edx
        jc err_arg
        inc esi
        inc ecx
        jmp .digit
.end:
        test ecx, ecx
        jz err_arg
        mov dl, [esi]
        test dl, dl
        jz .store
        cmp dl, ' '
        jne err_arg
.store:
        mov [ebx], eax
        jmp .skip
.done:
        ret

; match_key: if the string at ESI starts with the NUL-terminated key at
; EDI, advances ESI past it and sets ZF; otherwise leaves ESI and clears ZF.
match_key:
        push esi
.cmp:
        mov al, [edi]
        test al, al
        jz .yes
        cmp al, [esi]
        jne .no
        inc esi
        inc edi
        jmp .cmp
.yes:
        add esp, 4
        cmp eax, eax
        ret
.no:
        pop esi
        or eax, 1                        ; clears ZF: EAX holds a key byte
        ret

; calibrate_tsc: counts TSC ticks over PIT_COUNT ticks of PIT channel 2
; and stores them in tsc_per_pit.
calibrate_tsc:
        in al, 0x61
        and al, 0xfd                     ; speaker off
        or al, 0x01                      ; channel 2 gate on
        out 0x61, al
        mov al, 0xb0                     ; channel 2, lobyte/hibyte, mode 0, binary
        out 0x43, al
        mov al, PIT_COUNT & 0xff
        out 0x42, al
        mov al, PIT_COUNT >> 8
        out 0x42, al
        rdtsc
        mov [tsc_t0], eax
        mov [tsc_t0 + 4], edx
.wait:
        in al, 0x61
        test al, 0x20                    ; channel 2 output: high once the count ran out
        jz .wait
        rdtsc
        sub eax, [tsc_t0]
        sbb edx, [tsc_t0 + 4]
        mov [tsc_per_pit], eax
        mov [tsc_per_pit + 4], edx
        ret

err_nomem:
        mov esi, msg_nomem
        jmp fail32
err_region:
        mov esi, msg_region
        jmp fail32
err_arg:
        mov esi, msg_arg
fail32:
        push esi
        mov esi, msg_error
        call puts32
        pop esi
        call puts32
        mov al, 10
        call putc32
halt:
        cli
        hlt
        jmp halt

BITS 64
long64:
        mov ax, SEL_DATA
        mov ss, ax
        ; TSC frequency = ticks over the PIT interval × PIT_HZ / PIT_COUNT.
        mov rax, [tsc_per_pit]
        mov rcx, PIT_HZ
        mul rcx
        mov rcx, PIT_COUNT
        div rcx
        mov r15, rax                     ; TSC ticks per second
        ; Parameters in pages.
        mov eax, [arg_rate]
        shl rax, 8                       ; 256 pages per MiB
        mov r12, rax                     ; pages per second
        xor edx, edx
        mov rcx, 10
        div rcx
        mov [backlog], rax               ; at most 100 ms of writes to catch up after a pause
        mov eax, [arg_start]
        shl rax, 20
        mov r11, rax                     ; region base
        mov eax, [arg_size]
        shl rax, 8
        mov r10, rax                     ; region pages

        ; SYSEXIT to 64-bit ring 3 takes CS from SYSENTER_CS+32 and SS
        ; from SYSENTER_CS+40, RIP from RDX and RSP from RCX.
        mov ecx, 0x174                   ; IA32_SYSENTER_CS
        mov eax, SEL_CODE64
        xor edx, edx
        wrmsr
        mov ax, SEL_UDATA
        mov ds, ax
        mov es, ax
        mov fs, ax
        mov gs, ax
        pushfq
        pop rax
        and rax, ~(1 << 9)               ; IF off
        or rax, 3 << 12                  ; IOPL 3: ring 3 may use the serial port
        push rax
        popfq
        mov rcx, user_stack_top
        mov rdx, user64
        db 0x48, 0x0f, 0x35              ; sysexit with REX.W: return to 64-bit mode

; Ring 3 from here. Registers: R15 TSC Hz, R14 pacing origin TSC, R13
; pages written since R14, R12 pages per second, R11 region base, R10
; region pages, R9 xorshift state, R8 next heartbeat TSC, RBX heartbeat
; sequence, RBP pages dirtied in all.
user64:
        mov rsi, msg_banner
        call puts
        mov rax, r15
        xor edx, edx
        mov rcx, 1000
        div rcx
        call putdec                      ; tsc_khz
        mov rsi, msg_rate
        call puts
        mov eax, [arg_rate]
        call putdec
        mov rsi, msg_start
        call puts
        mov eax, [arg_start]
        call putdec
        mov rsi, msg_size
        call puts
        mov eax, [arg_size]
        call putdec
        mov al, 10
        call putc

        rdtsc
        shl rdx, 32
        or rax, rdx
        mov r14, rax
        lea r8, [rax + r15]
        xor r13, r13
        xor ebx, ebx
        xor ebp, ebp
        mov r9, 0x9e3779b97f4a7c15

.loop:
        rdtsc
        shl rdx, 32
        or rax, rdx
        mov rsi, rax                     ; now
        cmp rsi, r8
        jb .nohb
        add r8, r15
        cmp r8, rsi
        ja .hb
        lea r8, [rsi + r15]              ; paused for longer than a period: skip the missed ones
.hb:
        inc rbx
        call heartbeat
.nohb:
        test r12, r12
        jz .loop                         ; idle mode
        ; due = (now − origin) × pages per second / Hz, in 128 bits.
        mov rax, rsi
        sub rax, r14
        mul r12
        cmp rdx, r15
        jae .rebase                      ; the quotient would not fit: restart the pacing
        div r15
        mov rsi, rax                     ; due
        mov rcx, rax
        sub rcx, r13
        cmp rcx, [backlog]
        jbe .write
        mov r13, rsi
        sub r13, [backlog]
.write:
        cmp r13, rsi
        jae .loop
        ; xorshift64, then a page of the region.
        mov rax, r9
        shl rax, 13
        xor r9, rax
        mov rax, r9
        shr rax, 7
        xor r9, rax
        mov rax, r9
        shl rax, 17
        xor r9, rax
        mov rax, r9
        xor edx, edx
        div r10
        mov rdi, rdx
        shl rdi, 12
        add rdi, r11
        inc rbp
        mov rax, rbp
        shl rax, 12
        or rax, r9                       ; never zero, differs per write
        mov ecx, 512
        rep stosq
        inc r13
        jmp .write
.rebase:
        mov r14, rsi
        xor r13, r13
        jmp .loop

; heartbeat: prints "hb RBX dirtied=RBP\n".
heartbeat:
        push rsi
        mov rsi, msg_hb
        call puts
        mov rax, rbx
        call putdec
        mov rsi, msg_dirtied
        call puts
        mov rax, rbp
        call putdec
        mov al, 10
        call putc
        pop rsi
        ret

; putc: writes AL to COM1 once its transmitter is ready.
putc:
        push rdx
        push rax
        mov dx, COM1 + 5
.wait:
        in al, dx
        test al, 0x20
        jz .wait
        pop rax
        mov dx, COM1
        out dx, al
        pop rdx
        ret

; puts: writes the NUL-terminated string at RSI.
puts:
        push rax
.next:
        lodsb
        test al, al
        jz .done
        call putc
        jmp .next
.done:
        pop rax
        ret

; putdec: writes RAX in decimal.
putdec:
        push rcx
        push rdx
        push rdi
        lea rdi, [numbuf + 20]
        mov rcx, 10
.digit:
        xor edx, edx
        div rcx
        add dl, '0'
        dec rdi
        mov [rdi], dl
        test rax, rax
        jnz .digit
.out:
        mov al, [rdi]
        call putc
        inc rdi
        cmp rdi, numbuf + 20
        jb .out
        pop rdi
        pop rdx
        pop rcx
        ret

align 8
gdt:
        dq 0
        dq 0x00AF9A000000FFFF            ; 0x08 64-bit code, ring 0
        dq 0x00CF92000000FFFF            ; 0x10 data, ring 0
        dq 0x00CF9A000000FFFF            ; 0x18 32-bit code, ring 0
        dq 0x00CFFA000000FFFF            ; 0x20 32-bit code, ring 3 (SYSEXIT's 32-bit target; unused)
        dq 0x00AFFA000000FFFF            ; 0x28 64-bit code, ring 3
        dq 0x00CFF2000000FFFF            ; 0x30 data, ring 3
gdt_end:
gdt_desc:
        dw gdt_end - gdt - 1
        dd gdt

; Defaults when the command line leaves a parameter out: idle, and a
; 2 MiB region just above the guest.
arg_rate:       dd 0
arg_start:      dd FIRST_FREE_MIB
arg_size:       dd 2

key_rate:       db "rate=", 0
key_start:      db "start=", 0
key_size:       db "size=", 0
msg_banner:     db 10, "peerbench-guest tsc_khz=", 0
msg_rate:       db " rate=", 0
msg_start:      db " start=", 0
msg_size:       db " size=", 0
msg_hb:         db "hb ", 0
msg_dirtied:    db " dirtied=", 0
msg_error:      db 10, "peerbench-guest error: ", 0
msg_nomem:      db "no memory size from the loader", 0
msg_region:     db "region outside RAM (want start>=2, size>=1, end within RAM and 4 GiB)", 0
msg_arg:        db "bad command line (want rate=N start=N size=N, decimal MiB)", 0

load_end:

; Zeroed by the loader (bss_end_addr).
section .bss
alignb 4096
pml4:           resb 4096
pdpt:           resb 4096
pd:             resb 4 * 4096
mbi:            resd 1
ram_mib:        resd 1
tsc_t0:         resq 1
tsc_per_pit:    resq 1
backlog:        resq 1
numbuf:         resb 24
alignb 16
                resb 4096
boot_stack_top:
                resb 4096
user_stack_top:
bss_end:
