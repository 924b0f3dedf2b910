/**
 * Commands: downstream systems act on vendors through the normalized model. See docs/commands.md.
 *
 * @example
 * ```ts
 * import { commandRoutes, createCommands } from './commands/index.ts';
 * const commands = createCommands();
 * const hub = await createHub({ ...config, ...commands.hooks });
 * await hub.start();
 * await commands.start(hub.host);
 * ```
 */
export {
  COMMAND_QUEUE,
  type CommandCall,
  type CommandCredentialView,
  type CommandDetail,
  type CommandInput,
  type CommandListQuery,
  type CommandSender,
  type Commands,
  type CommandsOptions,
  type CommandView,
  createCommands,
  resolveCommandsOptions,
} from './commands.ts';
export { commandDetailSchema, commandRoutes, commandSchema } from './http.ts';
