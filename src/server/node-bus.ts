/**
 * Notices between the server nodes of one grid: "a site has work queued",
 * "push this kill to that pilot". A notice only saves time: every one is
 * about state that is committed already (a job in a queue, a job's kill), so
 * a lost notice delays work until the safety nets look (an idle thread's poll,
 * a pilot's next report), and a repeated one finds nothing left to do. On
 * Redis it is pub/sub (at most once); a node alone needs none.
 */
import type { Cluster, Redis } from "ioredis";
import type { Logger } from "../runtime/logger.js";
import type { RedisClient } from "./redis-connection.js";

export type NoticeHandler = (message: string) => void;

export interface NodeBus {
  /** Tells every other node (and this one: handlers ignore what they did themselves). */
  publish(topic: string, message: string): void;
  /** Hears a topic until the node stops. */
  subscribe(topic: string, handler: NoticeHandler): void;
  close(): Promise<void>;
}

/** A node alone: nobody else to tell. */
export class LocalNodeBus implements NodeBus {
  publish(): void {}
  subscribe(): void {}
  async close(): Promise<void> {}
}

export class RedisNodeBus implements NodeBus {
  private readonly handlers = new Map<string, NoticeHandler[]>();
  private subscriber: RedisClient | null = null;
  private subscribing: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly client: RedisClient,
    private readonly prefix: string,
    private readonly log: Logger,
  ) {}

  private channel(topic: string): string {
    return `${this.prefix}:notice:${topic}`;
  }

  publish(topic: string, message: string): void {
    this.client.publish(this.channel(topic), message).catch((err: unknown) => {
      this.log.debug({ topic, err: (err as Error).message }, "notice not published");
    });
  }

  subscribe(topic: string, handler: NoticeHandler): void {
    const channel = this.channel(topic);
    const list = this.handlers.get(channel);
    if (list) {
      list.push(handler);
      return;
    }
    this.handlers.set(channel, [handler]);
    const subscriber = this.connection();
    this.subscribing = this.subscribing
      .then(() => subscriber.subscribe(channel))
      .catch((err: unknown) =>
        this.log.warn({ topic, err: (err as Error).message }, "notice subscription failed"),
      );
  }

  /** A connection of its own: one that subscribes can do nothing else. */
  private connection(): RedisClient {
    if (this.subscriber) return this.subscriber;
    // The two client kinds spell `duplicate` differently.
    const subscriber: RedisClient = this.client.isCluster
      ? (this.client as Cluster).duplicate()
      : (this.client as Redis).duplicate();
    subscriber.on("error", (err: Error) => this.log.debug({ err: err.message }, "notice connection"));
    subscriber.on("message", (channel: string, message: string) => {
      for (const handler of this.handlers.get(channel) ?? []) {
        try {
          handler(message);
        } catch (err) {
          this.log.warn({ channel, err: (err as Error).message }, "notice handler failed");
        }
      }
    });
    this.subscriber = subscriber;
    return subscriber;
  }

  async close(): Promise<void> {
    const subscriber = this.subscriber;
    this.subscriber = null;
    this.handlers.clear();
    if (subscriber) subscriber.disconnect();
  }
}
