// What keeps an image's bytes independent of where the repository is checked out.

/** Replaces every mention of the checkout folder `repo` in a bundle by `stable`. */
export function withoutCheckoutPath(text: string, repo: string, stable: string): string {
  const from = repo.replace(/\/+$/, '');
  return text.split(`${from}/`).join(`${stable}/`).split(`"${from}"`).join(`"${stable}"`);
}
