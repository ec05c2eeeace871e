import assert from 'node:assert/strict';
import { ConfigError, loadConfigText } from '../../src/config/index.js';

/** The problems a config text is refused with; fails the test when it is accepted. */
export function configProblems(text: string): ConfigError['problems'] {
  try {
    loadConfigText(text, 'bastion.yaml', '/tmp');
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  assert.fail('the config was accepted');
}
