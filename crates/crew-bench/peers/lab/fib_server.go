// fib_server: the Go peer of seed 003's table: a goroutine per connection, the same protocol
// as crew serve (a decimal n and a newline in, fib(n) and a newline out, `error:` lines for bad
// input, a line over 64 bytes closes). Built by `crew bench` with `go build` when go is
// installed (apt-get install golang-go).
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const maxLine = 64

func fib(n int) int {
	if n <= 2 {
		return 1
	}
	return fib(n-1) + fib(n-2)
}

func reply(line string, maxN int) string {
	text := strings.TrimSpace(line)
	if text == "" {
		return "error: empty request: send a number n such as `25`\n"
	}
	n, err := strconv.Atoi(text)
	if err != nil {
		return fmt.Sprintf("error: not a number: %q; send a decimal n between 0 and %d\n", text, maxN)
	}
	if n < 0 {
		return fmt.Sprintf("error: negative n %s: n must be between 0 and %d\n", text, maxN)
	}
	if n > maxN {
		return fmt.Sprintf("error: n %s above the maximum %d (fib(n) must be exact and finish)\n", text, maxN)
	}
	return strconv.Itoa(fib(n)) + "\n"
}

// lingerClose stops writing and drains the client for a moment, so closing with unread input
// does not reset the connection before the error line arrives.
func lingerClose(conn net.Conn) {
	if tcp, ok := conn.(*net.TCPConn); ok {
		tcp.CloseWrite()
	}
	conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	io.Copy(io.Discard, conn)
}

func handle(conn net.Conn, maxN int, talk bool) {
	defer conn.Close()
	if tcp, ok := conn.(*net.TCPConn); ok {
		tcp.SetNoDelay(true)
	}
	if talk {
		buf := make([]byte, 4096)
		for {
			k, err := conn.Read(buf)
			if err != nil {
				return
			}
			if _, err := conn.Write([]byte(reply(string(buf[:k]), maxN))); err != nil {
				return
			}
		}
	}
	reader := bufio.NewReaderSize(conn, 4096)
	writer := bufio.NewWriter(conn)
	for {
		line, err := reader.ReadSlice('\n')
		if err == bufio.ErrBufferFull || len(strings.TrimRight(string(line), "\r\n")) > maxLine ||
			(err != nil && len(line) > maxLine+1) {
			writer.WriteString(fmt.Sprintf("error: line longer than %d bytes\n", maxLine))
			writer.Flush()
			lingerClose(conn)
			return
		}
		if err != nil {
			return
		}
		writer.WriteString(reply(string(line), maxN))
		if reader.Buffered() == 0 {
			if err := writer.Flush(); err != nil {
				return
			}
		}
	}
}

func main() {
	addr := flag.String("addr", "127.0.0.1:25000", "address to listen on")
	framing := flag.String("framing", "line", "line or talk")
	maxN := flag.Int("max-n", 40, "largest n served")
	flag.Parse()
	listener, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("listening on %s\n", listener.Addr())
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-signals
		listener.Close()
		os.Exit(0)
	}()
	for {
		conn, err := listener.Accept()
		if err != nil {
			return
		}
		go handle(conn, *maxN, *framing == "talk")
	}
}
