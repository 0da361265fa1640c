// Prints one `--search-attribute NAME=Type` pair per line for `temporal server start-dev`.
import { searchAttributeFlags } from '../domain/workflow-contract';

for (const flag of searchAttributeFlags()) console.log(`--search-attribute\n${flag}`);
