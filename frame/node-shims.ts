// Injected into the browser bundle: the Node globals simple-peer and its stream deps expect.
import { Buffer } from 'buffer';
import process from 'process';

export { Buffer, process };
