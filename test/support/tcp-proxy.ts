/** A TCP proxy of a test's own on loopback, between a process and a server, that can cut every connection for a while. */
import { createServer, connect, type Socket } from 'node:net';

export interface TcpProxy {
  port: number;
  /** Destroy every connection and refuse new ones until `restore`. */
  cut(): void;
  restore(): void;
  /** Connections refused while cut (proof the cut was felt). */
  refused: number;
  close(): Promise<void>;
}

export function startProxy(targetPort: number): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  let cutOff = false;
  let refused = 0;
  const server = createServer((client) => {
    if (cutOff) {
      refused++;
      client.destroy();
      return;
    }
    const upstream = connect(targetPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
    }
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    const proxy: TcpProxy = {
      port: (server.address() as { port: number }).port,
      cut() {
        cutOff = true;
        for (const s of sockets) s.destroy();
      },
      restore() { cutOff = false; },
      get refused() { return refused; },
      close: () => new Promise((done) => {
        for (const s of sockets) s.destroy();
        server.close(() => done());
      }),
    };
    resolve(proxy);
  }));
}
