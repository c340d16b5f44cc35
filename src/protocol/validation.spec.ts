import fc from 'fast-check';
import { codePointsUpTo } from './validation';

const HIGH = '\ud83d'; // high surrogate of 😀
const LOW = '\ude00'; // low surrogate of 😀

describe('codePointsUpTo', () => {
  it.each<[string, string, number, number]>([
    ['ASCII over the limit', 'abcdef', 3, 4],
    ['ASCII at the limit', 'abc', 3, 3],
    ['one surrogate pair per character', '😀😀😀😀', 3, 4],
    ['pairs at the limit', '😀😀😀', 3, 3],
    ['mixed BMP and astral', 'a😀b😀c', 4, 5],
    ['a lone high surrogate in the middle', `a${HIGH}bcd`, 3, 4],
    ['a lone low surrogate', `a${LOW}bcd`, 3, 4],
    ['a lone high surrogate at the end', `abc${HIGH}`, 3, 4],
    ['reversed surrogates (low, high) are two', `${LOW}${HIGH}ab`, 3, 4],
    ['two high surrogates then a low', `${HIGH}${HIGH}${LOW}ab`, 3, 4],
  ])('counts %s', (_case, text, limit, expected) => {
    expect(codePointsUpTo(text, limit)).toBe(expected);
  });

  it('counts a string of pairs exactly when its UTF-16 length is over the limit', () => {
    expect(codePointsUpTo('😀😀😀', 5)).toBe(3); // 6 units > 5: counted, 3 code points
  });

  it('stops counting at limit + 1', () => {
    expect(codePointsUpTo('x'.repeat(1000), 10)).toBe(11);
    expect(codePointsUpTo('😀'.repeat(1000), 10)).toBe(11);
  });

  it('is over the limit exactly when the string has more code points than the limit (property)', () => {
    const unit = fc.oneof(
      fc.constantFrom(HIGH, LOW, 'a', 'é', '\uffff'),
      fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
    );
    fc.assert(
      fc.property(fc.string({ unit, maxLength: 40 }), fc.nat(50), (text, limit) => {
        const codePoints = [...text].length; // lone surrogates count as one each
        const counted = codePointsUpTo(text, limit);
        expect(counted > limit).toBe(codePoints > limit);
        if (codePoints > limit) expect(counted).toBe(limit + 1);
      }),
      { numRuns: 2000 },
    );
  });

  it('never scans a string that is short enough by UTF-16 units', () => {
    expect(codePointsUpTo('😀', 5)).toBeLessThanOrEqual(5);
  });
});
