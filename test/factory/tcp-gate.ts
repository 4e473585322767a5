// A port that refuses connections while shut and pipes them to a target once opened: a server pilots cannot reach, then can.

import type { AddressInfo } from "node:net";
import { connect, createServer, type Server, type Socket } from "node:net";

export class TcpGate {
  private readonly sockets = new Set<Socket>();
  private listening = false;

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Shut: the port is taken (so nothing else gets it) only for the moment it takes to learn it. */
  static async start(targetPort: number): Promise<TcpGate> {
    let gate: TcpGate | undefined;
    const server = createServer((socket) => {
      const upstream = connect(targetPort, "127.0.0.1");
      gate?.sockets.add(socket).add(upstream);
      socket.pipe(upstream).pipe(socket);
      const close = () => {
        socket.destroy();
        upstream.destroy();
      };
      socket.on("error", close).on("close", close);
      upstream.on("error", close).on("close", close);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as AddressInfo).port;
    await new Promise((resolve) => server.close(resolve));
    gate = new TcpGate(server, port);
    return gate;
  }

  async open(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(this.port, "127.0.0.1", resolve));
    this.listening = true;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    if (this.listening) await new Promise((resolve) => this.server.close(resolve));
  }
}
