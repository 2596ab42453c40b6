package testbed

import "net"

// HungEndpoint listens on the loopback, accepts every connection and never answers,
// like a manager whose daemon is stopped while the kernel still completes the TCP
// handshake: the failure that costs a client the most. It returns the endpoint
// (tcp://127.0.0.1:port) and a function that closes the listener and every connection.
func HungEndpoint() (endpoint string, closeAll func(), err error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	conns := make(chan net.Conn, 4096)
	go func() {
		defer close(conns)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns <- c
		}
	}()
	closeAll = func() {
		_ = l.Close()
		for c := range conns {
			_ = c.Close()
		}
	}
	return "tcp://" + l.Addr().String(), closeAll, nil
}
